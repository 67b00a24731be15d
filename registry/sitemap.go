package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // the decoders DecodeConfig knows
	_ "image/png"
	"math"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// The site map is the district's own map that an admin uploads for the
// camera map of the web app: a north-up PNG or JPEG and two reference
// points that tie two of its pixels to latitude and longitude, so that
// cameras are drawn over it without any outside map server. There is one
// per installation.

// Limits of a site map image.
const (
	MaxSiteMapBytes = 16 << 20
	MaxSiteMapSide  = 16384
	minSiteMapSide  = 16
)

// MapRef ties a pixel of the site map (X to the right, Y down, from the
// top-left corner) to a place.
type MapRef struct {
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// SiteMap describes the uploaded site map (not its bytes).
type SiteMap struct {
	ContentType string `json:"contentType"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Bytes       int    `json:"bytes"`
	// Refs are the two reference points; empty until the admin places them
	// (uploading an image clears them).
	Refs      []MapRef  `json:"refs"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updatedBy"`
	// ETag changes with the image.
	ETag string `json:"etag"`
}

// CheckSiteMapImage tells the type and size of a site map image, failing
// with apierr.ErrInvalid for anything but a PNG or JPEG of sensible size.
func CheckSiteMapImage(data []byte) (contentType string, width, height int, err error) {
	if len(data) == 0 {
		return "", 0, 0, apierr.New(apierr.ErrInvalid, "the map image is empty")
	}
	if len(data) > MaxSiteMapBytes {
		return "", 0, 0, apierr.New(apierr.ErrInvalid, "the map image has %d bytes, more than the limit of %d", len(data), MaxSiteMapBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || (format != "png" && format != "jpeg") {
		return "", 0, 0, apierr.New(apierr.ErrInvalid, "the map image is not a PNG or JPEG file")
	}
	if cfg.Width < minSiteMapSide || cfg.Height < minSiteMapSide || cfg.Width > MaxSiteMapSide || cfg.Height > MaxSiteMapSide {
		return "", 0, 0, apierr.New(apierr.ErrInvalid, "the map image is %dx%d pixels; each side must be from %d to %d",
			cfg.Width, cfg.Height, minSiteMapSide, MaxSiteMapSide)
	}
	return "image/" + format, cfg.Width, cfg.Height, nil
}

// checkMapRefs validates two reference points on an image of w×h pixels:
// inside it, at valid coordinates, apart on both axes, and north-up (the
// point further north is higher on the image, the one further east more
// to the right), since the map is placed by scaling and moving, not
// rotating.
func checkMapRefs(refs []MapRef, w, h int) error {
	if len(refs) != 2 {
		return apierr.New(apierr.ErrInvalid, "give exactly two reference points, not %d", len(refs))
	}
	for i, p := range refs {
		for _, v := range []float64{p.X, p.Y, p.Lat, p.Lng} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return apierr.New(apierr.ErrInvalid, "reference point %d is not a number", i+1)
			}
		}
		if p.X < 0 || p.Y < 0 || p.X > float64(w) || p.Y > float64(h) {
			return apierr.New(apierr.ErrInvalid, "reference point %d (%g, %g) lies outside the %dx%d image", i+1, p.X, p.Y, w, h)
		}
		if p.Lat < -85 || p.Lat > 85 || p.Lng < -180 || p.Lng > 180 {
			return apierr.New(apierr.ErrInvalid, "reference point %d: latitude %g or longitude %g is out of range", i+1, p.Lat, p.Lng)
		}
	}
	a, b := refs[0], refs[1]
	if math.Abs(a.X-b.X) < 8 || math.Abs(a.Y-b.Y) < 8 || a.Lat == b.Lat || a.Lng == b.Lng {
		return apierr.New(apierr.ErrInvalid, "the two reference points must differ in latitude and longitude and lie apart on the image both across and down (at least 8 pixels)")
	}
	if (b.X-a.X)*(b.Lng-a.Lng) < 0 || (b.Y-a.Y)*(b.Lat-a.Lat) > 0 {
		return apierr.New(apierr.ErrInvalid, "the reference points do not fit a north-up map (north at the top, east to the right): check them")
	}
	return nil
}

// SiteMap returns the site map's description; ok is false when none was uploaded.
func (r *Registry) SiteMap(ctx context.Context) (m SiteMap, ok bool, err error) {
	_, m, ok, err = r.siteMap(ctx, false)
	return m, ok, err
}

// SiteMapImage returns the site map's image and description; ok is false
// when none was uploaded.
func (r *Registry) SiteMapImage(ctx context.Context) (data []byte, m SiteMap, ok bool, err error) {
	return r.siteMap(ctx, true)
}

func (r *Registry) siteMap(ctx context.Context, withImage bool) (data []byte, m SiteMap, ok bool, err error) {
	q := `SELECT content_type, width, height, length(image), refs, etag, updated_ns, updated_by, NULL FROM site_map WHERE id = 1`
	if withImage {
		q = `SELECT content_type, width, height, length(image), refs, etag, updated_ns, updated_by, image FROM site_map WHERE id = 1`
	}
	var refs string
	var ns int64
	err = r.db.QueryRow(ctx, q).Scan(&m.ContentType, &m.Width, &m.Height, &m.Bytes, &refs, &m.ETag, &ns, &m.UpdatedBy, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, SiteMap{}, false, nil
	}
	if err != nil {
		return nil, SiteMap{}, false, fmt.Errorf("site map: %w", err)
	}
	if err := json.Unmarshal([]byte(refs), &m.Refs); err != nil {
		return nil, SiteMap{}, false, fmt.Errorf("site map: reference points: %w", err)
	}
	if m.Refs == nil {
		m.Refs = []MapRef{}
	}
	m.Updated = time.Unix(0, ns).UTC()
	return data, m, true, nil
}

// SetSiteMapImage stores the site map image (a PNG or JPEG, checked with
// CheckSiteMapImage), replacing any other, and clears the reference
// points: they name pixels of the image they were placed on.
func (r *Registry) SetSiteMapImage(ctx context.Context, data []byte, by string) (SiteMap, error) {
	ct, w, h, err := CheckSiteMapImage(data)
	if err != nil {
		return SiteMap{}, err
	}
	sum := sha256.Sum256(data)
	etag := hex.EncodeToString(sum[:8])
	_, err = r.db.Exec(ctx, `INSERT INTO site_map(id, image, content_type, width, height, refs, etag, updated_ns, updated_by)
		VALUES(1, ?, ?, ?, ?, '[]', ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET image = excluded.image, content_type = excluded.content_type, width = excluded.width,
			height = excluded.height, refs = '[]', etag = excluded.etag, updated_ns = excluded.updated_ns, updated_by = excluded.updated_by`,
		data, ct, w, h, etag, r.now().UnixNano(), by)
	if err != nil {
		return SiteMap{}, fmt.Errorf("site map: %w", err)
	}
	m, _, err := r.SiteMap(ctx)
	return m, err
}

// SetSiteMapRefs places the site map by two reference points (see
// checkMapRefs). It fails with apierr.ErrNotFound when no image was uploaded.
func (r *Registry) SetSiteMapRefs(ctx context.Context, refs []MapRef, by string) (SiteMap, error) {
	var m SiteMap
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		var w, h int
		err := tx.QueryRow(ctx, `SELECT width, height FROM site_map WHERE id = 1`+tx.Dialect.ForUpdate()).Scan(&w, &h)
		if errors.Is(err, sql.ErrNoRows) {
			return apierr.New(apierr.ErrNotFound, "no map image was uploaded: upload one first")
		}
		if err != nil {
			return fmt.Errorf("site map: %w", err)
		}
		if err := checkMapRefs(refs, w, h); err != nil {
			return err
		}
		b, _ := json.Marshal(refs)
		_, err = tx.Exec(ctx, `UPDATE site_map SET refs = ?, updated_ns = ?, updated_by = ? WHERE id = 1`, string(b), r.now().UnixNano(), by)
		return err
	})
	if err != nil {
		return SiteMap{}, err
	}
	m, _, err = r.SiteMap(ctx)
	return m, err
}

// DeleteSiteMap removes the site map: the camera map draws its grid again.
// It fails with apierr.ErrNotFound when there is none.
func (r *Registry) DeleteSiteMap(ctx context.Context) error {
	res, err := r.db.Exec(ctx, `DELETE FROM site_map WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("site map: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.New(apierr.ErrNotFound, "no map image was uploaded")
	}
	return nil
}
