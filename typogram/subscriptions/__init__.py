"""Plans and subscriptions: the pure rules (``rules``) and the service (``service``)."""
