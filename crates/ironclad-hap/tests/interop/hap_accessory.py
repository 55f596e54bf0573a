"""HAP-python 5.0.0 accessory on 127.0.0.1 (any free port), setup code 031-45-154, NO mDNS.

usage: hap_accessory.py STATE_FILE [MAC]
Prints "READY <port>" on stdout once listening; runs until killed or stdin closes.
The accessory is a temperature sensor whose CurrentTemperature reads 21.5.
"""
import asyncio
import logging
import sys
import threading

from pyhap.accessory import Accessory
from pyhap.accessory_driver import AccessoryDriver
from pyhap.const import CATEGORY_SENSOR


class NoZeroconf:  # replaces AsyncZeroconf: nothing is multicast
    async def async_register_service(self, *a, **k): ...
    async def async_unregister_service(self, *a, **k): ...
    async def async_update_service(self, *a, **k): ...
    async def async_close(self): ...

    def __getattr__(self, name):
        return lambda *a, **k: None


class TempSensor(Accessory):
    category = CATEGORY_SENSOR

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        serv = self.add_preload_service("TemperatureSensor")
        self.char_temp = serv.configure_char("CurrentTemperature", value=21.5)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    state = sys.argv[1]
    mac = sys.argv[2] if len(sys.argv) > 2 else "AA:BB:CC:DD:EE:01"
    driver = AccessoryDriver(address="127.0.0.1", port=0, pincode=b"031-45-154", persist_file=state,
                             mac=mac, async_zeroconf_instance=NoZeroconf())
    driver.add_accessory(TempSensor(driver, "TestSensor"))

    async def boot():
        await driver.async_start()
        port = driver.http_server.server.sockets[0].getsockname()[1]
        print("READY", port, flush=True)

    def wait_for_eof():  # the test closes stdin (or dies): stop
        sys.stdin.read()
        driver.loop.call_soon_threadsafe(driver.loop.stop)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    driver.add_job(boot())
    driver.loop.run_forever()


if __name__ == "__main__":
    main()
