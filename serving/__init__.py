"""The HTTP API and draw-a-digit page (serving/app.py), served by uvicorn (serving/server.py)."""
