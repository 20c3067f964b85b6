"""Reading digits and numbers from people's own images with the pipeline's trained models.

image.py (MNIST-style normalisation and segmentation) -> reader.py (a model, loaded once) ->
predict.py (the command line) and api.py (the HTTP API and the draw-a-digit page in static/),
served by serve.py. Imports run that way only. Nothing in src/'s library imports this package;
the stage that scores the reader on other writers (src/evaluate_writers.py) does, and nothing imports it.
"""
