"""The built-in step kinds. Importing this module registers them, in the order hints
list them; a new kind is one module in this folder plus one line here."""

# ruff: noqa: I001, F401
import podium.core.steps.llm
import podium.core.steps.classify
import podium.core.steps.template
import podium.core.steps.branch
import podium.core.steps.map
import podium.core.steps.ensemble
import podium.core.steps.review
import podium.core.steps.retrieve
import podium.core.steps.agent
import podium.core.steps.team
