"""Post-trade analysis and live views over the store: read-only SQL (``sql``), TCA reports
(``report``, ``plot``, ``html``) and the live progress view (``watch``). Nothing here writes
to the database."""
