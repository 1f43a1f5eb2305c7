"""The web dashboard at /ui: a few hand-written static pages that read only the public REST API
(`/api/v1`) and its event stream. `routes(runtime)` (in `architect.web.routes`) is mounted by the
HTTP application (`architect.app`); login turns an admin or virtual key into a server-side session."""
