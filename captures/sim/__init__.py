"""The simulator behind ``iotwatch simulate``: synthetic labelled IoT homes written as pcapng."""
