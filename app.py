#!/usr/bin/env python3
"""CDK entry point (`cdk.json`: "app": "python3 app.py"): the orders stack for the context's stage.

`cdk synth`/`cdk deploy` pass cdk.json's context (and `-c key=value`) themselves, and theirs wins;
cdk.json's context is also given here so `CDK_OUTDIR=cdk.out python app.py` synthesizes the same.
"""

from aws_cdk import App

from infra.application import build
from infra.settings import cdk_json_context

app = App(context=cdk_json_context())
build(app)
app.synth()
