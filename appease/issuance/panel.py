"""What apps above this one add to the customer panel's give form (the CSR page and the
helpdesk sidebar): each registers, from its `ready()`, a function that answers extra
template context for the panel. This app knows none of them (docs/architecture.md,
"Layers": feedback shows an experiment's assignment here)."""

from __future__ import annotations

from collections.abc import Callable

PanelExtension = Callable[..., dict]
_extensions: list[PanelExtension] = []


def panel_extension_register(extension: PanelExtension) -> None:
    """`extension(request=, customer=, form=)` answers a dict merged into the panel's
    context, when the panel renders and when the give form comes back."""
    if extension not in _extensions:
        _extensions.append(extension)


def panel_extensions_context(*, request, customer, form) -> dict:
    context: dict = {}
    for extension in _extensions:
        context.update(extension(request=request, customer=customer, form=form))
    return context
