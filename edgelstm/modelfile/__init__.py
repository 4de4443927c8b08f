"""The edgelstm metadata inside every model file: the device-safe reader, the host-side writer, inspect."""
