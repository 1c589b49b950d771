# The Upstox guide's MarketDataStreamerV3 example, with only the import changed
# (was: `import upstox_client` and `upstox_client.MarketDataStreamerV3(...)`).
import upstox_client
from fastfeed.compat import MarketDataStreamerV3


def on_message(message):
    print(message)


def main():
    configuration = upstox_client.Configuration()
    access_token = "<ACCESS_TOKEN>"
    configuration.access_token = access_token

    streamer = MarketDataStreamerV3(
        upstox_client.ApiClient(configuration), ["NSE_INDEX|Nifty 50", "NSE_INDEX|Nifty Bank"], "full")

    streamer.on("message", on_message)

    streamer.connect()


if __name__ == "__main__":
    main()
