"""usvid: a detectron2-style training engine and the Ultrasound VID lesion-detection application."""

__version__ = "0.1.0"
