// Parley never downloads a browser at install: whatsapp-web.js sessions use Debian's chromium
// (/usr/bin/chromium) or PUPPETEER_EXECUTABLE_PATH.
module.exports = { skipDownload: true };
