"""tshark and dumpcap: the only place that starts them or uses pyshark's capture machinery."""
