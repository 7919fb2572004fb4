# Simplifies europe.geojson for the server-rendered map: Douglas-Peucker with
# a 0.02 degree tolerance, coordinates rounded to 0.01 degree, polygons
# smaller than 0.02 square degrees dropped.
import json, sys
def dp(pts, tol):
    if len(pts) < 3: return pts
    (x1,y1),(x2,y2) = pts[0], pts[-1]
    dx,dy = x2-x1, y2-y1
    n = (dx*dx+dy*dy) ** 0.5
    best, idx = -1, 0
    for i in range(1, len(pts)-1):
        x,y = pts[i]
        d = abs(dy*x - dx*y + x2*y1 - y2*x1)/n if n else ((x-x1)**2+(y-y1)**2)**0.5
        if d > best: best, idx = d, i
    if best > tol:
        return dp(pts[:idx+1], tol)[:-1] + dp(pts[idx:], tol)
    return [pts[0], pts[-1]]
def area(r):
    return abs(sum(r[i][0]*r[i+1][1]-r[i+1][0]*r[i][1] for i in range(len(r)-1)))/2
def ring(r):
    # split closed ring in two halves so DP keeps shape
    h = len(r)//2
    s = dp(r[:h+1], 0.02)[:-1] + dp(r[h:], 0.02)
    s = [[round(x,2), round(y,2)] for x,y in s]
    out = [s[0]]
    for p in s[1:]:
        if p != out[-1]: out.append(p)
    return out
src = json.load(open(sys.argv[1]))
feats = []
for f in src["features"]:
    g = f["geometry"]
    polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
    keep = []
    for p in polys:
        if area(p[0]) < 0.02: continue
        rings = [ring(r) for r in p]
        rings = [r for r in rings if len(r) >= 4]
        if rings: keep.append(rings)
    if not keep: continue
    pr = f["properties"]
    feats.append({"type":"Feature","id":f["id"],"properties":{"name":pr["name_en"],"iso_a2":pr["iso_a2"]},
                  "geometry":{"type":"MultiPolygon","coordinates":keep}})
json.dump({"type":"FeatureCollection","name":"europe_countries_ne50m_simplified","features":feats}, open(sys.argv[2],"w"), separators=(",",":"))
