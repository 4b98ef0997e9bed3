"""The wiki service (:8000): the gateway (Host -> wiki, credentials -> caller), `otterwiki/`
(the one place that patches Otterwiki), its own responses and the page API views.
"""
