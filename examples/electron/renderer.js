'use strict'

// The page: no Node.js, no addon; only window.backend from preload.js.

const log = (text) => {
  const element = document.getElementById('log')
  element.textContent += `${new Date().toLocaleTimeString()}  ${text}\n`
  element.scrollTop = element.scrollHeight
}

async function call(method, params) {
  try {
    log(`${method} → ${JSON.stringify(await window.backend.request(method, params))}`)
  } catch (error) {
    log(`${method} failed: ${error.message}`)
  }
}

window.backend.channel().then(({ dir, role }) => {
  document.getElementById('channel').textContent = `channel: ${dir} (${role})`
})
window.backend.onEvent(({ name, payload }) => log(`event ${name} ${JSON.stringify(payload)}`))

document.getElementById('ping').addEventListener('click', () => call('ping'))
document.getElementById('add').addEventListener('click', () => call('add', { a: 2, b: 40 }))
document.getElementById('info').addEventListener('click', () => call('info'))
document.getElementById('count').addEventListener('click', () => call('count', { to: 5 }))
