"""GKE v1 and Compute v1 emulators, laid out like moto: routes, thin handlers, models, errors."""
