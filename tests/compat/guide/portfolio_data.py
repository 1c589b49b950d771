# The Upstox guide's PortfolioDataStreamer example, with only the import changed.
import upstox_client
from fastfeed.compat import PortfolioDataStreamer


def on_message(message):
    print(message)


def main():
    configuration = upstox_client.Configuration()
    access_token = "<ACCESS_TOKEN>"
    configuration.access_token = access_token

    streamer = PortfolioDataStreamer(upstox_client.ApiClient(configuration), order_update=True,
                                     position_update=True, holding_update=True, gtt_update=True)

    streamer.on("message", on_message)

    streamer.connect()


if __name__ == "__main__":
    main()
