"""Faces in photos: detection with five landmarks (detect.py), FFHQ-style alignment (align.py), reading photos."""
