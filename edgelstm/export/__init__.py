"""From a trained model to files a device runs: convert, calibrate, quantize, flatbuffer passes."""
