"""Status: services, broker, queues, workers, disk, models and GPU memory in one report."""
