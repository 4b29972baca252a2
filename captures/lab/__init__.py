"""The namespace lab behind ``iotwatch lab``: real attack tools recorded in isolated namespaces."""
