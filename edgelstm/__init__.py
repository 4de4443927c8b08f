"""edgelstm: small recurrent models from sensor data to a device that runs them in real time."""

__version__ = "0.1.0"
