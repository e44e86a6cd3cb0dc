"""The CDK app's constructs: one per concern, composed by `infra.stack.OrdersStack`.

Importing this package imports no aws_cdk (the layer build runs before the CDK is installed).
"""
