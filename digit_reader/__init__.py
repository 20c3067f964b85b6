"""Reading digits and numbers from people's own images with the pipeline's trained models.

image.py (MNIST-style normalisation and segmentation) -> reader.py (a model, loaded once) ->
predict.py (the command line) and api.py (the HTTP API and the draw-a-digit page in static/),
served by serve.py. Imports run that way only. Nothing in src/'s library imports this package;
three stages do, and no other stage imports them: src/writer_digits.py and src/writer_lines.py
cut the other writers' digits and lines out as the reader does (image.py, line.py), and
src/evaluate_writers.py scores the whole reader on them.
"""
