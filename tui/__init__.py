"""The Textual app (UI only): everything else lives in iotwatch.captures / iotwatch.detector."""
