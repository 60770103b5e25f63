"""Network listeners: gevent I/O that feeds the codec and the broker core."""
