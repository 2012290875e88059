"""serve.py's local web page: camera frames over a WebSocket, photo and video uploads.

    app.py       create_app(service): the FastAPI routes, the limits, the temporary folder
    service.py   Service: the model loaded once, one model call at a time for every client;
                 frame_processor(), the one adapter to the face pipeline
    static/      the page (index.html, app.js, style.css), no build step
"""
