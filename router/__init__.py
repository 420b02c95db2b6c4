"""Tiergate's router: turns a request into p_strong, the need for the strong model.

``load_router()`` gives a Router for the shipped artifact; ``Router.score`` scores a batch of
prompts or messages lists; ``Router.threshold_for_fraction`` turns a target strong-call fraction
into a threshold. ``load_routes(specs, encoder)`` gives the operator-route classifier, ``Routes``,
which classifies the vectors ``Router.embed`` already computed. Importing this package loads neither
torch nor the encoder: load_router does.
"""

from router.conversation import Item
from router.errors import RouterError
from router.model import Embedded, Router, load_router
from router.routes import RouteMatch, Routes, load_routes

__all__ = [
    "Embedded",
    "Item",
    "RouteMatch",
    "Router",
    "RouterError",
    "Routes",
    "load_router",
    "load_routes",
]
