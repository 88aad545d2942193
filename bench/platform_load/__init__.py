"""The whole platform under a day's mix with Locust (``python -m bench.platform_load``):
``locustfile`` holds the users and the mix, ``__main__`` starts the platform and reports."""
