"""Event-sourcing core of the order service: envelope, event store port and adapters,
domain (orders, inventory) and the command-handling application service.

Shipped to Lambda as a layer; domain modules import no boto3 and read no environment.
"""
