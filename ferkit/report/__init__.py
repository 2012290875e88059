"""What the analysis scripts share: accuracy, confusion and example faces (evaluate), figures,
the pages of report.pdf (pages) and the experiment plan and table (experiments). Imports nothing
here."""
