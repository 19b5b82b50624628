"""An asyncio MQTT 3.1.1 client (mqtt.client) and its packet codec (mqtt.packet).

Knows nothing of the gateway: host, credentials, topics and callbacks are
passed in. See mqtt/client.py for the behaviour, mqtt/packet.py for the wire.
"""
