const fs = require('fs'), vm = require('vm');
const html = fs.readFileSync(process.argv[2], 'utf8');
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(m => m[1]);
for (const s of scripts) vm.runInThisContext(s);
const specs = [...html.matchAll(/var spec = (\{[\s\S]*?\});\s*vegaEmbed/g)].map(m => JSON.parse(m[1]));
(async () => {
  let n = 0;
  for (const spec of specs) {
    const vgSpec = spec.$schema && spec.$schema.includes('vega-lite') ? vegaLite.compile(spec).spec : spec;
    const view = new vega.View(vega.parse(vgSpec), {renderer: 'none'});
    const svg = await view.toSVG();
    if (!svg.includes('<svg') || svg.length < 1000) throw new Error('blank plot ' + n);
    n++;
  }
  console.log(JSON.stringify({scripts: scripts.length, plots: n}));
})().catch(e => { console.error(e.message); process.exit(1); });
