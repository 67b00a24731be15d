package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// mapConfig is GET /api/v1/map: how the web app draws the camera map.
type mapConfig struct {
	// Tiles is ui.mapTiles: the URL template of the site's own tile
	// server, or "" (none: a grid, or the site map).
	Tiles string `json:"tiles"`
	// Image is the uploaded site map, or null; its bytes are at
	// /api/v1/map/image.
	Image *registry.SiteMap `json:"image"`
}

// mapRefsBody is PUT /api/v1/map.
type mapRefsBody struct {
	Refs []registry.MapRef `json:"refs"`
}

func (s *Server) getMap(w http.ResponseWriter, r *http.Request, c *call) error {
	m, ok, err := s.reg.SiteMap(r.Context())
	if err != nil {
		return err
	}
	out := mapConfig{Tiles: s.opts.MapTiles}
	if ok {
		out.Image = &m
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMapImage(w http.ResponseWriter, r *http.Request, c *call) error {
	// A browser that has the image revalidates it: answer that from the
	// description, without reading the image (up to 16 MB) from the database.
	if match := r.Header.Get("If-None-Match"); match != "" {
		m, ok, err := s.reg.SiteMap(r.Context())
		if err != nil {
			return err
		}
		if ok && strings.Contains(match, `"`+m.ETag+`"`) {
			w.Header().Set("ETag", `"`+m.ETag+`"`)
			w.Header().Set("Cache-Control", "private, no-cache")
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	data, m, ok, err := s.reg.SiteMapImage(r.Context())
	if err != nil {
		return err
	}
	if !ok {
		return apierr.New(apierr.ErrNotFound, "no map image was uploaded")
	}
	h := w.Header()
	h.Set("ETag", `"`+m.ETag+`"`)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("Content-Type", m.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return nil
}

// putMapImage stores the site map image sent as the body (image/png or
// image/jpeg; the bytes must be what the type says).
func (s *Server) putMapImage(w http.ResponseWriter, r *http.Request, c *call) error {
	switch mediaType(r) {
	case "image/png", "image/jpeg":
	default:
		return errStatus(http.StatusUnsupportedMediaType, "send the map image as the body with Content-Type: image/png or image/jpeg")
	}
	data, err := readBody(w, r, registry.MaxSiteMapBytes)
	if err != nil {
		return err
	}
	m, err := s.reg.SetSiteMapImage(r.Context(), data, c.p.user.Username)
	if err != nil {
		return err
	}
	c.audit.Detail = "image " + m.ContentType + " " + strconv.Itoa(m.Width) + "x" + strconv.Itoa(m.Height) + " " + strconv.Itoa(m.Bytes) + " bytes"
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) putMap(w http.ResponseWriter, r *http.Request, c *call) error {
	var body mapRefsBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	m, err := s.reg.SetSiteMapRefs(r.Context(), body.Refs, c.p.user.Username)
	if err != nil {
		return err
	}
	var d []string
	for _, p := range m.Refs {
		d = append(d, strconv.FormatFloat(p.X, 'f', 1, 64)+","+strconv.FormatFloat(p.Y, 'f', 1, 64)+"="+
			strconv.FormatFloat(p.Lat, 'f', 6, 64)+","+strconv.FormatFloat(p.Lng, 'f', 6, 64))
	}
	c.audit.Detail = "reference points " + strings.Join(d, " ")
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) deleteMap(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeNoContent(w, s.reg.DeleteSiteMap(r.Context()))
}

// tilesOrigin is the origin (scheme://host) of a tile URL template that the
// Content Security Policy must allow images from; "" when the template is
// empty or a path on this server.
func tilesOrigin(tiles string) string {
	if tiles == "" || strings.HasPrefix(tiles, "/") && !strings.HasPrefix(tiles, "//") {
		return ""
	}
	u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(tiles))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
