"""Routing learned from outcomes: outcome files, prompt features, routers (per prompt, P(acceptable) per
candidate model) and their evaluation with RouteLLM's metrics and RouterBench's cost frontier.

A domain: it may import the leaves, the store and the gateway, never another domain."""
