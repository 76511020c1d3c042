# The web-caption D_pre of 2026-11-28: each of the 40,000 world captions, with probability 0.5,
# gets one of its attributes (count among Two/Three/Four, color, background) changed at random.
# Made /tmp/nz/captions.jsonl (19,388 captions changed); file paths made absolute.
import json, random, re
random.seed(7)
C = ['Two', 'Three', 'Four']; K = ['red', 'yellow', 'blue', 'purple', 'green']; B = ['black', 'gray', 'white']
out = open('/tmp/nz/captions.jsonl', 'w'); n = ch = 0
for l in open('/tmp/rq3/world-data/captions.jsonl'):
    r = json.loads(l); t = r['caption']; n += 1
    if random.random() < 0.5:
        opts = []; w = t.split()
        if w[0] in C: opts.append('count')
        if any(k in w for k in K): opts.append('color')
        m = re.search(r'on a (\w+) background', t)
        if m: opts.append('bg')
        if opts:
            o = random.choice(opts)
            if o == 'count':
                w[0] = random.choice([c for c in C if c != w[0]]); t = ' '.join(w)
            elif o == 'color':
                k = [x for x in K if x in w][0]
                t = t.replace(' ' + k + ' ', ' ' + random.choice([x for x in K if x != k]) + ' ', 1)
            else:
                t = t.replace('on a %s background' % m.group(1), 'on a %s background' % random.choice([x for x in B if x != m.group(1)]))
            ch += t != r['caption']
    r['caption'] = t; r['file'] = '/tmp/rq3/world-data/' + r['file']; out.write(json.dumps(r) + '\n')
print(n, ch)
