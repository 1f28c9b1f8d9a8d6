"""``pyorchestrate notify ...``: try the alert channels and look after their state.

Added to the ``pyorchestrate`` command through the ``pyorchestrate.cli`` entry-point
group (the core never imports ``notifiers``). The channels come from the same settings
an application uses (``PYORCHESTRATE_NOTIFY_*`` variables, or a TOML file named by
``--config`` or ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``). Nothing here prints a secret:
errors are redacted, settings errors name the field, never the value.

The state commands (``status``, ``outbox list|replay|purge``, ``mute``, ``unmute``,
``mutes``) work on the state file (:mod:`notifiers.state`) named by ``--state-path``
(or ``PYORCHESTRATE_NOTIFY_STATE_PATH``), else by the settings' ``state_path``. They
never create it just to read it; only ``mute`` creates it (a mute may be set before
the application starts).

Exit codes: 0 ok; 1 a channel failed, or nothing was found to act on (no state
file, no such row or mute); 2 usage or settings error (the state file cannot be
opened, a bad duration, purge without ``--yes``).

The package: :mod:`._common` (the app, consoles, options, exit codes, errors),
:mod:`._durations`, :mod:`._format`, :mod:`._statefile`, then one module per command
group: :mod:`.sending` (``test``), :mod:`.status`, :mod:`.mutes` and :mod:`.outbox`.
Importing them registers their commands on :data:`app`.
"""

from __future__ import annotations

from ._common import app
from ._durations import parse_duration

# isort: off
# The commands are listed by ``--help`` in the order their modules register them.
from . import sending, status, mutes, outbox  # noqa: F401  (registration)

# isort: on

__all__ = ["app", "parse_duration"]
