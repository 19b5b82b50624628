"""The board interface (board.current.load() gives the one this runs on): everything the app needs from the hardware, in one
small object, so the same app runs on ESP8266, ESP32, CPython and the unix
MicroPython. An implementation provides:

    name                 "esp8266", "esp32", "host"
    chip_id()            hex str, stable per board (used in host names and topics)
    time()               Unix seconds (UTC), whatever epoch the port counts from
    set_time(unix)       set the clock (from the DTU when there is no NTP)
    ntp_sync()           try NTP once; True when the clock is now trusted
    time_trusted         True once NTP (or the host OS) vouches for the clock
    data_dir             folder for settings and events
    www_dir              folder of the gzipped web app (gateway/web/webui.py)
    mem_free()           free heap in bytes, or None where unknown (CPython)
    mem_alloc()          heap in use in bytes, or None where unknown
    reset()              restart the board
    http_clients         HTTP connections served at once (gateway.web.httpd)
    http_backlog         connections the network stack keeps waiting beyond those
    dns_addr             (host, port) the captive-portal DNS responder binds
                         while the AP is up (("0.0.0.0", 53) on a board), or None
    wifi                 the WiFi interfaces, thin over network.WLAN:
      .fixed             True: the network is managed outside the app (a PC
                         with --dtu); the app never joins, scans or opens an AP
      .connected() .ssid() .rssi() .ip()   the station (STA) side
      .scan()            [(ssid bytes, bssid, channel, rssi, authmode, hidden)]
                         as network.WLAN.scan() (STA made active if needed)
      .connect(ssid, password)   start joining; returns at once
      .status()          "idle" | "connecting" | "connected" | "wrong_password"
                         | "no_ap" | "fail" (the port's STAT_* mapped to these)
      .disconnect()      leave and stop retrying (ESP8266: also no auto-join)
      .ap_start(ssid, password="")  open our AP ("" = open) at .ap_ip()
      .ap_stop() .ap_active() .ap_ssid() .ap_ip()
"""
