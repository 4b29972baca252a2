"""iotwatch: a terminal network monitor that finds attacks in IoT traffic."""
__version__ = "0.1.0"
