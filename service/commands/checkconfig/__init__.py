"""`python -m service check-config`: what a mapping would fail on, before it is saved.

Reads each destination's field schema with read-only calls (Salesforce sObject
describe, HubSpot properties, Airtable base schema: one module each), compares
every config against it (compare.py, pure) and prints one line per problem
(cli.py). Contract §4a.
"""
