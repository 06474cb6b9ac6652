"""Scorewright Studio: the browser page a designer auditions and edits a map in (`static/`),
and the server side of its own messages (`service.py`). Its connection is the web transport
(transport/web.py); it drives the same engine and director as every game."""
