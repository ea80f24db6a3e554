package selfplay

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigFlags registers one flag per configuration key on fs, named by its
// YAML path (-game.batch_size) with the key's help text, so every knob can
// be set on the command line and --help lists them all. The returned
// function applies the flags that were set, in command-line order, over a
// configuration loaded from defaults or a file.
func ConfigFlags(fs FuncFlagSet) (apply func(*Config) error) {
	type setting struct{ path, value string }
	var settings []setting
	for _, f := range ConfigFields() {
		path := f.Path
		fs.Func(path, fmt.Sprintf("%s (default %s)", f.Help, f.Default), func(v string) error {
			settings = append(settings, setting{path, v})
			return nil
		})
	}
	for path, why := range removedKeys {
		fs.Func(path, "removed: "+why, func(string) error { return fmt.Errorf("%s", why) })
	}
	return func(cfg *Config) error {
		for _, s := range settings {
			if err := SetConfigValue(cfg, s.path, s.value); err != nil {
				return err
			}
		}
		return nil
	}
}

// FuncFlagSet is a flag set that takes flags with a function to call on
// each value: the standard library's *flag.FlagSet and pflag's.
type FuncFlagSet interface {
	Func(name, usage string, fn func(string) error)
}

// SetConfigValue sets one key, given by its YAML path, from its text form
// (parsed as YAML, so "true", "1e-6" and "0.8" work as expected).
func SetConfigValue(cfg *Config, path, value string) error {
	sectionName, fieldName, ok := strings.Cut(path, ".")
	if !ok {
		return fmt.Errorf("config key %q: want section.key", path)
	}
	if why, ok := removedKeys[path]; ok {
		return fmt.Errorf("%s: %s", path, why)
	}
	field, err := fieldByPath(reflect.ValueOf(cfg).Elem(), sectionName, fieldName)
	if err != nil {
		return err
	}
	if field.Kind() == reflect.String {
		field.SetString(value) // a string needs no YAML quoting on the command line
		return nil
	}
	if err := yaml.Unmarshal([]byte(value), field.Addr().Interface()); err != nil {
		return fmt.Errorf("%s: %q is not a valid %s", path, value, field.Kind())
	}
	return nil
}

// fieldByPath finds the key fieldName (which may itself be a path into a
// nested section, "lora.rank") in section sectionName.
func fieldByPath(root reflect.Value, sectionName, fieldName string) (reflect.Value, error) {
	v := root
	for _, name := range append([]string{sectionName}, strings.Split(fieldName, ".")...) {
		found := false
		if v.Kind() == reflect.Struct {
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).Tag.Get("yaml") == name {
					v, found = v.Field(i), true
					break
				}
			}
		}
		if !found {
			return reflect.Value{}, fmt.Errorf("unknown config key %q", sectionName+"."+fieldName)
		}
	}
	if v.Kind() == reflect.Struct {
		return reflect.Value{}, fmt.Errorf("config key %q is a section; set one of its keys", sectionName+"."+fieldName)
	}
	return v, nil
}
