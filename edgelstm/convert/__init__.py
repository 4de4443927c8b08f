"""Export to TFLite and ONNX (sequence and step models), with edgelstm metadata inside every file."""
