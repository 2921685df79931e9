// A Node app written for a port, with no signal handling and nothing of baton's: baton's Node
// adapter (workers.adapt) runs it unchanged. docs/recipes.md.
const http = require('http');

const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(`hello from an unmodified app (pid ${process.pid})\n`);
});

const port = process.env.PORT || 3000;
server.listen(port, () => console.log(`listening on port ${port}`));
