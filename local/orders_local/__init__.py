"""Run the order service on one machine: moto for AWS, a local API Gateway, locally signed tokens."""
