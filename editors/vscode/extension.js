// The VS Code side of gaugedsl: highlighting is declarative (package.json and
// syntaxes/gauge.tmLanguage.json); this file only starts `gaugedsl lsp` for diagnostics,
// hover, completion and formatting. It needs `npm install` in this folder (for
// vscode-languageclient); without it, highlighting still works.
"use strict";

const vscode = require("vscode");

let client = null;

function activate(context) {
  const config = vscode.workspace.getConfiguration("gaugedsl");
  if (!config.get("server.enable", true)) {
    return;
  }
  let lsp;
  try {
    lsp = require("vscode-languageclient/node");
  } catch (err) {
    console.warn("gaugedsl: vscode-languageclient is not installed (run `npm install` in the extension folder); highlighting only.");
    return;
  }
  const [command, ...args] = config.get("server.command", ["gaugedsl", "lsp"]);
  const serverOptions = { command, args, transport: lsp.TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ language: "gaugedsl" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.gauge") },
  };
  client = new lsp.LanguageClient("gaugedsl", "gaugedsl", serverOptions, clientOptions);
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
