from django import template

from vehicles.selectors import mask_vin

register = template.Library()
register.filter("mask_vin", mask_vin)
