#!/bin/sh
# Gather "not a leaf" photos (people, animals, objects, vehicles, text, buildings, landscapes, abstract art) from
# sample images that Debian packages ship, for fitting and measuring CropShield's not-a-leaf rejection.
#
#   sh models/train/gather_nonleaf.sh [OUT_DIR]      (default .cache/nonleaf/not_a_leaf, from the repo root)
#
# Installs the packages below (needs root and `apt-get update` done), then converts each chosen image to RGB
# (transparency flattened onto white, as Go's decoder does), shrinks it by area averaging so its longest side is at
# most 1024 px, and writes it as JPEG (quality 90) named <source>__<name>.jpg. Deterministic: fixed file lists,
# sorted order, no randomness. Images that show leaves, plants, flowers, fruit or vegetables are left out on purpose
# (by the lists and EXCLUDE patterns below), so that every output is a genuine non-leaf.
set -eu

OUT=${1:-.cache/nonleaf/not_a_leaf}
PKGS="python3-skimage python-matplotlib-data opencv-doc mate-backgrounds gnome-backgrounds plasma-workspace-wallpapers desktop-base lomiri-wallpapers tuxpaint-stamps-default python3-pil"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
fi

mkdir -p "$OUT"
/usr/bin/python3 - "$OUT" <<'EOF'
import fnmatch, glob, os, sys
from PIL import Image

out = sys.argv[1]
SK = "/usr/lib/python3/dist-packages/skimage/data/"
CV = "/usr/share/doc/opencv-doc/examples/"
TUX = "/usr/share/tuxpaint/stamps/"

sources = []  # (prefix, path)
for n in ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
          "coins.png", "color.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "logo.png",
          "microaneurysms.png", "moon.png", "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png"]:
    sources.append(("skimage", SK + n))
sources.append(("matplotlib", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"))
for n in ["Blender_Suzanne1.jpg", "HappyFish.jpg", "LinuxLogo.jpg", "aero1.jpg", "baboon.jpg", "basketball1.png",
          "blox.jpg", "board.jpg", "box_in_scene.png", "building.jpg", "butterfly.jpg", "cards.png",
          "chicky_512.png", "digits.png", "ela_original.jpg", "graf1.png", "home.jpg", "imageTextN.png", "left01.jpg",
          "left.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg", "notes.png", "pic1.png", "pic3.png",
          "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "sudoku.png",
          "text_defocus.jpg"]:
    sources.append(("opencv", CV + "data/" + n))
for n in sorted(glob.glob(CV + "text/scenetext0*.jpg")) + sorted(glob.glob(CV + "hfs/data/*.jpg")):
    sources.append(("opencv", n))
for n in sorted(glob.glob("/usr/share/backgrounds/mate/*/*")):
    sources.append(("mate", n))
for n in sorted(glob.glob("/usr/share/backgrounds/gnome/*.webp")):
    if n.endswith("-d.webp") or not os.path.exists(n[:-7] + "-d.webp"):  # one of each light/dark pair
        sources.append(("gnome", n))
for d in sorted(glob.glob("/usr/share/wallpapers/*/contents/images")):
    imgs = [p for p in glob.glob(d + "/*") if p.lower().endswith((".png", ".jpg", ".jpeg"))]
    if imgs:  # one picture per wallpaper: the largest
        def px(p):
            try:
                w, h = os.path.basename(p).split(".")[0].split("x")
                return int(w) * int(h)
            except ValueError:
                return 0
        sources.append(("plasma", sorted(imgs, key=lambda p: (-px(p), p))[0]))
for n in sorted(glob.glob("/usr/share/desktop-base/*-theme/grub/grub-16x9.png")):
    sources.append(("debian", n))
for n in ["/usr/share/backgrounds/warty-final-ubuntu.png", "/usr/share/backgrounds/lomiri-default-background.png"]:
    sources.append(("lomiri", n))
TUX_DIRS = ["animals/birds", "animals/mammals", "animals/fish", "animals/marsupials", "animals/shellfish",
            "animals/amphibians", "household", "hobbies", "clothes", "vehicles", "military", "sports", "space",
            "town/houses", "town/monuments", "town/roadsigns", "symbols/money", "symbols/music", "food/dessert"]
for sub in TUX_DIRS:
    for n in sorted(glob.glob(TUX + sub + "/**/*.png", recursive=True)):
        if "/scale" not in n and not n.endswith("_mirror.png"):
            sources.append(("tuxpaint", n))

# Plants, leaves, flowers, fruit, vegetables, trees, forests, meadows: not negatives.
EXCLUDE = ["*GreenMeadow*", "*Garden*", "*FreshFlower*", "*YellowFlower*", "*LadyBird*", "*Autumn*", "*Canopee*",
           "*FallenLeaf*", "*/Path/*", "*/food/fruit*", "*/food/vegetables*", "*salad*", "*lettuce*", "*herb*",
           "*leaf*", "*plant*", "*tree*", "*flower*", "*/hfs/data/00[12].jpg", "*/mate/*/GreenTraditional*",
           "*/mate/*/RainDrops*", "*/mate/*/TwoWings*", "*/mate/*/Dune*", "*OneStandsOut*", "*squirrel_cls*",
           "*albino_peahen*",
           # duplicates at other sizes
           "*Elephants_*",
           # transparent wallpapers that flatten to a blank white picture
           "*Arc-Colors-Transparent*", "*Float-into-MATE*", "*/Gulp.png", "*MATE-Stripes-Light*", "*/Silk.png",
           "*/Spring.png", "*/Waves.png"]
seen = set()
n_ok = 0
for prefix, path in sources:
    if not os.path.isfile(path) or any(fnmatch.fnmatch(path, e) for e in EXCLUDE):
        continue
    base = os.path.splitext(os.path.basename(path))[0]
    if prefix in ("plasma",):
        base = path.split("/")[-4]
    elif prefix == "debian":
        base = path.split("/")[-3]
    elif prefix == "tuxpaint":
        base = "-".join(path[len(TUX):-4].split("/"))
    name = f"{prefix}__{base}.jpg".replace(" ", "_")
    if name in seen:
        continue
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:  # unreadable format: skip
        print("skip", path, e, file=sys.stderr)
        continue
    if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    im = im.convert("RGB")
    w, h = im.size
    if min(w, h) < 64:
        continue
    if max(w, h) > 1024:
        s = 1024 / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
    seen.add(name)
    im.save(os.path.join(out, name), "JPEG", quality=90)
    n_ok += 1
print(f"wrote {n_ok} images to {out}")
EOF
