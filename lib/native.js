'use strict';
// The one place that loads the compiled addon (through the generated binding.js).

const { loadFailure } = require('./platform');

let binding;
try {
  binding = require('../binding.js');
} catch (cause) {
  throw loadFailure(cause);
}

module.exports = binding;
