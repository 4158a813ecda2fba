'use strict'

// Runs sandboxed (the default since Electron 20): only a small `require` is available here
// ('electron' among it) and native addons such as ipckit cannot be loaded. So the channel stays in
// the main process and this script exposes a narrow API to the page through contextBridge.

const { contextBridge, ipcRenderer } = require('electron')

contextBridge.exposeInMainWorld('backend', {
  /** Calls an allow-listed backend method; resolves with its result, rejects with its error text. */
  request: (method, params) => ipcRenderer.invoke('ipckit:request', method, params),
  /** The channel directory and role, for display. */
  channel: () => ipcRenderer.invoke('ipckit:channel'),
  /** Calls `listener({ name, payload })` for each backend event; returns a function that stops it. */
  onEvent: (listener) => {
    const forward = (_event, message) => listener(message)
    ipcRenderer.on('ipckit:event', forward)
    return () => ipcRenderer.removeListener('ipckit:event', forward)
  },
})
