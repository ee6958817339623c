"""Normalisation: any JSON shape of a Windows event -> Sigma's Windows field names, plus derived fields."""

from svchunt.normalise.image_path import normalise_image_path
from svchunt.normalise.shapes import NotAnEvent, detect_shape, normalise_record
from svchunt.normalise.timestamps import normalise_timestamp

__all__ = ["NotAnEvent", "detect_shape", "normalise_image_path", "normalise_record", "normalise_timestamp"]
