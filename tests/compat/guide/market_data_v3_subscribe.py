# The Upstox guide's "subscribe on open" and auto-reconnect examples, with only the import changed.
import upstox_client
from fastfeed.compat import MarketDataStreamerV3


def main():
    configuration = upstox_client.Configuration()
    access_token = "<ACCESS_TOKEN>"
    configuration.access_token = access_token

    streamer = MarketDataStreamerV3(upstox_client.ApiClient(configuration))

    # Configure auto-reconnect: enable, 10s interval, 3 retries
    streamer.auto_reconnect(True, 10, 3)

    def on_open():
        print("Connected. Subscribing to instrument keys.")
        streamer.subscribe(
            ["NSE_EQ|INE020B01018", "NSE_EQ|INE467B01029"], "full")

    def on_message(message):
        print(message)

    def on_reconnection_halt(message):
        print(message)

    streamer.on("open", on_open)
    streamer.on("message", on_message)
    streamer.on("autoReconnectStopped", on_reconnection_halt)

    streamer.connect()


if __name__ == "__main__":
    main()
